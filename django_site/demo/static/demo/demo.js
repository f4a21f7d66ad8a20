// The demo page: a live public feed and the signed-in user's notifications.
(function () {
  "use strict";
  var rt = djwamp.connect();
  var stateEl = document.getElementById("state");
  var banner = document.getElementById("banner");
  var user = document.getElementById("demo").dataset.user;

  function show(text) {
    banner.textContent = text;
    banner.hidden = false;
  }

  function append(listId, text, id) {
    var item = document.createElement("li");
    item.textContent = text;
    if (id) item.dataset.eventId = id;
    var list = document.getElementById(listId);
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 50) list.removeChild(list.lastChild);
  }

  rt.on("state", function (state) {
    stateEl.textContent = state;
    stateEl.className = "state " + state;
  });
  rt.on("revoked", function () {
    show("You were signed out. Reload the page to continue.");
  });
  rt.on("gap", function () {
    show("Reconnected, but some events sent while the connection was down could not be recovered.");
  });
  rt.on("error", function (error) {
    show("Error: " + error.uri);
  });

  rt.subscribe("public.feed", function (data, event) {
    append("feed", (data && data.text) || JSON.stringify(data), event.id);
  });

  if (user) {
    rt.subscribe("user." + user + ".notifications", function (data, event) {
      append("notifications", (data && data.text) || JSON.stringify(data), event.id);
    });
    document.getElementById("notify").addEventListener("submit", function (e) {
      e.preventDefault();
      fetch(e.target.action, { method: "POST", body: new FormData(e.target), credentials: "same-origin" });
    });
  }
  // Chat: the room's history on load, new messages live, sending through a Python procedure.
  var chatList = document.getElementById("chat-messages");
  function showChat(message, id) {
    if (!message || document.querySelector('#chat-messages li[data-event-id="' + id + '"]')) return;
    var item = document.createElement("li");
    item.dataset.eventId = id;
    item.textContent = (message.author || "?") + ": " + message.text;
    chatList.appendChild(item);
  }
  rt.subscribe("public.chat.lobby", function (message, event) { showChat(message, event.id); });
  rt.on("state", function (state) {
    if (state !== "connected") return;
    rt.history("public.chat.lobby", { limit: 20 }).then(function (events) {
      events.forEach(function (event) { showChat(event.args[0], event.id); });
    }, function () {});
    rt.call("demo.whoami").then(function (me) {
      document.getElementById("whoami").textContent = "demo.whoami says: " +
        (me.authenticated ? me.username + (me.is_staff ? " (staff)" : "") : "anonymous");
    });
  });
  var chatForm = document.getElementById("chat");
  if (chatForm) {
    chatForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var input = document.getElementById("chat-text");
      var error = document.getElementById("chat-error");
      error.textContent = "";
      rt.call("demo.chat.send", "lobby", input.value).then(function () {
        input.value = "";
      }, function (failure) {
        var messages = (failure.kwargs && failure.kwargs.errors && failure.kwargs.errors.text) || [failure.message];
        error.textContent = messages.join(" ");
      });
    });
  }

  window.demoRealtime = rt; // for the end-to-end tests and the curious
})();
