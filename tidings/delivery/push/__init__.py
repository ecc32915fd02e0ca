"""Push senders: FCM, APNs and Web Push, or an internal HTTP push service, routed per
device by `router.PushRouter`."""
