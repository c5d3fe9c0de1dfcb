// LTI client-side postMessage storage (lti.put_data / lti.get_data), used when the LMS sends
// lti_storage_target so that a launch works even where the browser blocks third-party cookies.
(function () {
  var box = document.getElementById("lti-storage");
  if (!box) return;
  var origin = box.dataset.origin || "*";
  var targetName = box.dataset.target;
  var target = window.parent;
  try {
    if (targetName && targetName !== "_parent") target = window.parent.frames[targetName] || window.parent;
  } catch (e) { target = window.parent; }
  var pending = {};

  function send(subject, extra, timeoutMs) {
    return new Promise(function (resolve, reject) {
      var id = subject + "-" + Math.random().toString(36).slice(2);
      var msg = Object.assign({ subject: subject, message_id: id }, extra || {});
      pending[id] = resolve;
      setTimeout(function () { if (pending[id]) { delete pending[id]; reject(new Error("timeout")); } }, timeoutMs || 2000);
      target.postMessage(msg, subject === "lti.capabilities" ? "*" : origin);
    });
  }

  window.addEventListener("message", function (event) {
    var data = event.data || {};
    if (origin !== "*" && event.origin !== origin && data.subject !== "lti.capabilities.response") return;
    var resolve = pending[data.message_id];
    if (resolve) { delete pending[data.message_id]; resolve(data); }
  });

  function supports(capabilities, subject) {
    var list = (capabilities && capabilities.supported_messages) || [];
    return list.some(function (m) { return m.subject === subject; });
  }

  function capabilities() {
    return send("lti.capabilities", {}, 1000).then(function (caps) {
      // Platforms answer from their own origin; put/get must go there.
      if (caps && caps.supported_messages) {
        caps.supported_messages.forEach(function (m) { if (m.subject === "lti.put_data" && m.frame) targetName = m.frame; });
      }
      return caps;
    });
  }

  if (box.dataset.mode === "login") {
    var next = function () { window.location.replace(box.dataset.next); };
    capabilities().then(function (caps) {
      if (!supports(caps, "lti.put_data")) return next();
      return Promise.all([
        send("lti.put_data", { key: "lti_state_" + box.dataset.state, value: box.dataset.state }),
        send("lti.put_data", { key: "lti_nonce_" + box.dataset.nonce, value: box.dataset.nonce })
      ]).then(next, next);
    }, next);
  } else {
    var fail = function () {
      document.getElementById("storage-status").hidden = true;
      document.getElementById("storage-failed").hidden = false;
    };
    send("lti.get_data", { key: "lti_state_" + box.dataset.state }, 3000).then(function (reply) {
      if (!reply || reply.value !== box.dataset.state) return fail();
      var form = document.getElementById("complete-form");
      form.elements.state.value = reply.value;
      form.submit();
    }, fail);
  }
})();
