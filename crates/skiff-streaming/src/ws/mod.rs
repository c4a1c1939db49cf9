//! The Kubernetes WebSocket channel protocols (`v5.channel.k8s.io`, `v4.channel.k8s.io`, their
//! base64 variants, and port-forward over `v4.channel.k8s.io`).
