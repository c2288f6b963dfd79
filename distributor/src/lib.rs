//! tidemark-distributor
