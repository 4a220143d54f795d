// Progressive enhancement only: every form works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // Ask before destructive form submissions marked with data-confirm.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  // Check that a password and its confirmation match before the form is sent
  // (the server checks again).
  document.querySelectorAll("form[data-password-pair]").forEach((form) => {
    const password = form.querySelector("input[name=password]");
    const confirmation = form.querySelector("input[name=passwordConfirmation]");
    if (!password || !confirmation) return;
    const check = () => {
      confirmation.setCustomValidity(password.value === confirmation.value ? "" : "The passwords do not match.");
    };
    password.addEventListener("input", check);
    confirmation.addEventListener("input", check);
  });
});
