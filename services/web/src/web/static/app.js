/* The little the app does with JavaScript; everything works without it.
   - An error summary gets the focus, so a screen reader reads it first (GOV.UK pattern).
   - After htmx swaps in new content, the same. */
(function () {
  function focusSummary() {
    var summary = document.querySelector(".error-summary[data-autofocus]");
    if (summary) { summary.focus(); }
  }
  document.addEventListener("DOMContentLoaded", focusSummary);
  document.addEventListener("htmx:afterSettle", focusSummary);
})();
/* A print button (hidden without JavaScript, where the browser's own printing remains). */
(function () {
  function printButtons() {
    document.querySelectorAll("button[data-print]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () { window.print(); });
    });
  }
  document.addEventListener("DOMContentLoaded", printButtons);
})();
