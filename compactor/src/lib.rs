//! tidemark-compactor
