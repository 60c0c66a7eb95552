-- Migration 4: a search step whose run the learning-curve ranker stopped
-- early (xfer-search run --early-stop ranker): observed holds the run's
-- last validation accuracy, and such a step is never the search's best.
ALTER TABLE search_steps ADD COLUMN terminated_early INTEGER NOT NULL DEFAULT 0;
