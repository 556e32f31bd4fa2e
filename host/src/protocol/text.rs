//! Semantic text of a request body, for checks (being written).
