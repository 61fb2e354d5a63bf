// The campaign editor page (templates/campaigns/editor.html), wired by what the page holds:
// - after a refused save, the first marked node scrolls into view and takes the focus;
// - leaving the page with edits not saved asks first (a save or "Save and activate" does not);
// - a test send refused for a problem in the message marks the fields it names (data-field)
//   and focuses the first; typing in a marked field clears its mark;
// - each variant of a split shows its share of people, from the weights as typed.
// Everything else is htmx and segments/builder.js. No inline scripts: the CSP forbids them.
(function () {
  "use strict";
  var form = document.getElementById("campaign-form");
  if (!form) return;

  var marked = document.querySelector("#journey .invalid, #journey .node-errors");
  if (marked && document.querySelector(".notice.bad")) {
    marked.scrollIntoView({ block: "center" });
    // The field the first error names ("send/message/subject" -> the subject), else the first.
    var code = marked.querySelector(".node-errors code");
    var key = code ? code.textContent.split("/").pop().replace(/"/g, "") : "";
    var field = marked.querySelector('[aria-invalid="true"]') ||
      (key && marked.querySelector('[name$=":' + key + '"]')) ||
      marked.querySelector("input:not([type=hidden]), select, textarea:not([hidden])");
    if (field) field.focus({ preventScroll: true });
  }

  // A blank weight weighs 1, as the server reads it; a bandit ignores the weights.
  function showShares(root) {
    root.querySelectorAll(".flow-send").forEach(function (step) {
      var outputs = step.querySelectorAll("output[data-share]");
      var allocation = step.querySelector('select[name$=":allocation"]');
      var weights = [];
      outputs.forEach(function (output) {
        var raw = document.getElementById(output.htmlFor.value).value.trim();
        var weight = raw === "" ? 1 : Number(raw);
        weights.push(isFinite(weight) && weight > 0 ? weight : 0);
      });
      var total = weights.reduce(function (sum, weight) { return sum + weight; }, 0);
      outputs.forEach(function (output, index) {
        if (allocation && allocation.value === "bandit") output.textContent = "share set by the bandit";
        else if (total > 0) output.textContent = Math.round((100 * weights[index]) / total) + "% of people";
        else output.textContent = "nobody: a split needs a weight above 0";
      });
    });
  }
  showShares(form);
  document.body.addEventListener("htmx:afterSettle", function () { showShares(form); });
  form.addEventListener("change", function (event) {
    if (/:allocation$/.test(event.target.name || "")) showShares(form);
  });

  var edited = false;
  form.addEventListener("input", function (event) {
    if (/:weight$/.test(event.target.name || "")) showShares(form);
    if (event.target.getAttribute("aria-invalid") === "true") event.target.removeAttribute("aria-invalid");
    if (event.target.id !== "preview-profile" && !event.target.closest(".test-send")) edited = true;
  });

  document.body.addEventListener("htmx:afterSwap", function (event) {
    var result = event.detail.target;
    if (!result.classList || !result.classList.contains("test-result")) return;
    var first = null;
    result.querySelectorAll("[data-field]").forEach(function (item) {
      var field = form.elements.namedItem(item.getAttribute("data-field"));
      if (!field || !field.setAttribute) return;
      field.setAttribute("aria-invalid", "true");
      first = first || field;
    });
    if (first) first.focus();
  });
  // Shape edits (add, move, remove a step) change the journey without an input event.
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var fromToggle = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("#view-toggle");
    if (!fromToggle && (event.detail.pathInfo.requestPath || "").indexOf("/editor/compose/") >= 0) edited = true;
  });
  form.addEventListener("submit", function () { edited = false; });
  window.addEventListener("beforeunload", function (event) {
    if (edited) event.preventDefault();
  });
})();
