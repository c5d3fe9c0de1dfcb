// Development LMS: submit the id_token form at once (the Continue button works without JavaScript).
document.getElementById("autopost").submit();
