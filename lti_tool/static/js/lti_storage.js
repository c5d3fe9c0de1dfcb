// LTI client-side postMessage storage (lti.put_data / lti.get_data), used when the LMS sends
// lti_storage_target so that a launch works even where the browser blocks third-party cookies.
//
// lti.capabilities goes to the window that embeds the tool (window.parent, or window.opener in a new window),
// answered from whatever origin that window has (Canvas answers from its own domain). The storage messages go
// to the frame named by lti_storage_target (or by the capabilities answer), addressed to the platform's OIDC
// origin only, and only answers from that origin are believed.
(function () {
  var box = document.getElementById("lti-storage");
  if (!box) return;
  var origin = box.dataset.origin || "*";
  var home = window.parent !== window ? window.parent : window.opener;
  var target = frameNamed(box.dataset.target);
  var pending = {};

  function frameNamed(name) {
    if (!home) return null;
    if (!name || name === "_parent") return home;
    try { return home.frames[name] || home; } catch (e) { return home; }
  }

  function send(win, subject, extra, targetOrigin, timeoutMs) {
    return new Promise(function (resolve, reject) {
      if (!win) return reject(new Error("no platform window"));
      var id = subject + "-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
      pending[id] = { resolve: resolve, origin: targetOrigin };
      setTimeout(function () { if (pending[id]) { delete pending[id]; reject(new Error("timeout")); } }, timeoutMs);
      win.postMessage(Object.assign({ subject: subject, message_id: id }, extra || {}), targetOrigin);
    });
  }

  window.addEventListener("message", function (event) {
    var data = event.data || {};
    var waiting = pending[data.message_id];
    if (!waiting) return;
    if (waiting.origin !== "*" && event.origin !== waiting.origin) return;
    delete pending[data.message_id];
    waiting.resolve(data);
  });

  function capabilities() {
    // Only platforms that sent lti_storage_target get here, so an answer is expected: the waits are generous
    // (a busy LMS page or a slow phone answers late; failing early cost the launch), and cost nothing when the
    // platform answers at once.
    return send(home, "lti.capabilities", {}, "*", 3000).then(function (caps) {
      var list = (caps && caps.supported_messages) || [];
      var put = list.filter(function (m) { return m.subject === "lti.put_data"; })[0];
      if (!put) return false;
      if (put.frame) target = frameNamed(put.frame);
      return true;
    });
  }

  function store(subject, extra, timeoutMs) {
    return send(target, subject, extra, origin, timeoutMs);
  }

  if (box.dataset.mode === "login") {
    var next = function () { window.location.replace(box.dataset.next); };
    capabilities().then(function (supported) {
      if (!supported) return next();
      return Promise.all([
        store("lti.put_data", { key: "lti_state_" + box.dataset.state, value: box.dataset.state }, 5000),
        store("lti.put_data", { key: "lti_nonce_" + box.dataset.nonce, value: box.dataset.nonce }, 5000)
      ]).then(next, next);
    }, next);
  } else {
    var fail = function () {
      document.getElementById("storage-status").hidden = true;
      document.getElementById("storage-failed").hidden = false;
    };
    store("lti.get_data", { key: "lti_state_" + box.dataset.state }, 5000).then(function (reply) {
      if (!reply || reply.value !== box.dataset.state) return fail();
      var form = document.getElementById("complete-form");
      form.elements.state.value = reply.value;
      form.submit();
    }, fail);
  }
})();
