-- Migration 3: a search keeps the universal model it started with, so a
-- resumed search predicts with that one even after new runs arrived (which
-- would make a fresh lookup fit another).
ALTER TABLE searches ADD COLUMN model_id INTEGER REFERENCES models (id);
