//! tidemark-config
