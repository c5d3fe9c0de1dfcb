// Development LMS: honor lti.frameResize like Canvas does, so the tool's frame fits its content.
window.addEventListener("message", function (event) {
  var data = event.data || {};
  if (data.subject !== "lti.frameResize" || event.origin !== window.location.origin) return;
  var frame = document.querySelector("iframe[name=tool-frame]");
  var height = parseInt(data.height, 10);
  if (frame && height > 0) frame.style.height = Math.min(height + 4, 20000) + "px";
});
