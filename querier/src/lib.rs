//! tidemark-querier
