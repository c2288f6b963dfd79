//! tidemark-ring
