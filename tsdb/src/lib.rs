//! tidemark-tsdb
