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
