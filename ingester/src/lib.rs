//! tidemark-ingester
