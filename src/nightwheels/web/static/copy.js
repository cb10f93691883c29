// Progressive enhancement: "Copy" buttons for install commands and digests.
// Without JavaScript (or without the Clipboard API) the buttons stay hidden; text stays selectable.
(function () {
  "use strict";
  if (!navigator.clipboard) {
    return;
  }
  function textFor(button) {
    var direct = button.getAttribute("data-copy-text");
    if (direct !== null) {
      return direct;
    }
    var target = document.getElementById(button.getAttribute("data-copy-target") || "");
    return target ? target.textContent.trim() : "";
  }
  function init() {
    var buttons = document.querySelectorAll("button[data-copy-text], button[data-copy-target]");
    Array.prototype.forEach.call(buttons, function (button) {
      var label = button.textContent;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(textFor(button)).then(
          function () {
            button.textContent = "Copied";
            button.setAttribute("data-copied", "true");
            setTimeout(function () {
              button.textContent = label;
              button.removeAttribute("data-copied");
            }, 2000);
          },
          function () {
            button.textContent = "Press Ctrl+C";
          }
        );
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
