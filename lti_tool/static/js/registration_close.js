// LTI Dynamic Registration: tell the LMS the registration is done so it closes the window or frame.
(window.opener || window.parent).postMessage({ subject: "org.imsglobal.lti.close" }, "*");
