// Behaviour the pages share, kept out of the HTML so that the Content-Security-Policy can forbid inline
// script. Loaded with `defer` on every page.
"use strict";

// A <select data-autosubmit> sends its form as soon as another option is chosen (the filters and pickers).
document.addEventListener("change", function (event) {
  var target = event.target;
  if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
    if (typeof target.form.requestSubmit === "function") {
      target.form.requestSubmit();
    } else {
      target.form.submit();
    }
  }
});
