"""Row validation inside the sync: normalize, validate with Pandera, hold bad rows in the
quarantine, replay it."""
