// The Web Push service worker: shows what the server pushed (the payload of
// tidings/delivery/push/webpush.py) and opens the inbox when the notification is clicked.
self.addEventListener("push", (event) => {
  let push = {};
  try { push = event.data ? event.data.json() : {}; } catch (error) { push = {}; }
  const title = push.title || "New notification";
  event.waitUntil(self.registration.showNotification(title, {
    body: push.body || "",
    tag: push.notification_id,
    data: { url: new URL("/inbox", self.location.origin).href },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
