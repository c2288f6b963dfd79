//! tidemark-scraper
