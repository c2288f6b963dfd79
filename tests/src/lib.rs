//! tidemark-tests
