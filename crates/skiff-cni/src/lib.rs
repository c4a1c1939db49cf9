//! Pod networking through CNI plugins, as the CNI spec 1.0 and libcni define it.
