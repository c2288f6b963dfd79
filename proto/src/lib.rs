//! tidemark-proto
