//! SPDY/3.1 (draft-mbelshe-httpbis-spdy-00 with the 3.1 flow control), as Kubernetes'
//! `httpstream/spdy` speaks it.
