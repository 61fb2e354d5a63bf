// Small behaviours of forms, wired by data- attributes (no inline scripts: the
// Content-Security-Policy allows scripts from this site's files only).
//   <form data-confirm="Really?"> or <button data-confirm="Really?">   asks before submitting
//   <input type="checkbox" data-select-all="FORM_ID">   ticks every name=id box of that form
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const text = (button && button.dataset.confirm) || event.target.dataset.confirm;
  if (text && !window.confirm(text)) event.preventDefault();
});
document.addEventListener("change", (event) => {
  const toggle = event.target.closest("[data-select-all]");
  if (!toggle) return;
  const formId = toggle.dataset.selectAll || "bulk";
  document.querySelectorAll(`input[form="${formId}"][name=id]`).forEach((box) => {
    box.checked = toggle.checked;
  });
});
