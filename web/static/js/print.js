// Printable forms: the Print button opens the browser's print dialog (no inline script: the CSP forbids it).
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("print-button");
  if (button) button.addEventListener("click", () => window.print());
});
