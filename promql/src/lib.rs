//! tidemark-promql
