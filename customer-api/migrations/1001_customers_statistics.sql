-- Keep planner statistics fresh under bursts of one customer type: with stale statistics the
-- type-filtered listing walks customers_updated_idx and filters every newer row of the other
-- type instead of using customers_type_updated_idx (30 ms instead of 0.1 ms at 100k rows).
ALTER TABLE customers SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);
