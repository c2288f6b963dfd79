//! label_replace, label_join and sorting by labels.
