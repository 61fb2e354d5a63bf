// The campaign editor page (templates/campaigns/editor.html), wired by what the page holds:
// - after a refused save, the first marked node scrolls into view and takes the focus;
// - leaving the page with edits not saved asks first (a save or "Save and activate" does not).
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
    var field = (key && marked.querySelector('[name$=":' + key + '"]')) ||
      marked.querySelector("input:not([type=hidden]), select, textarea:not([hidden])");
    if (field) field.focus({ preventScroll: true });
  }

  var edited = false;
  form.addEventListener("input", function (event) {
    if (event.target.id !== "preview-profile" && !event.target.closest(".test-send")) edited = true;
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
