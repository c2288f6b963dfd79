//! tidemark-server
