-- pipewarden's own tables on a new postgresql warehouse, as release 0.1.0 (commit 2e2659c) created
-- them: the statements its create_all ran, captured from the driver. tests/records builds
-- warehouses from it (tests/records/warehouses.py).

CREATE TABLE pipewarden_watermarks (
	table_name VARCHAR(200) NOT NULL, 
	cursor_value TEXT, 
	key_value TEXT, 
	run_id VARCHAR(36) NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (table_name)
);

CREATE TABLE pipewarden_sync_runs (
	run_id VARCHAR(36) NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	status VARCHAR(20) NOT NULL, 
	full_refresh BOOLEAN NOT NULL, 
	rows_read BIGINT NOT NULL, 
	rows_loaded BIGINT NOT NULL, 
	rows_unchanged BIGINT NOT NULL, 
	rows_quarantined BIGINT NOT NULL, 
	batches INTEGER NOT NULL, 
	duration_seconds FLOAT, 
	old_watermark TEXT, 
	new_watermark TEXT, 
	newest_source_cursor TEXT, 
	latency_p50_seconds FLOAT, 
	latency_p95_seconds FLOAT, 
	latency_max_seconds FLOAT, 
	schema_changes TEXT, 
	error TEXT, 
	flow_run_id VARCHAR(36), 
	PRIMARY KEY (run_id)
);

CREATE INDEX ix_pipewarden_sync_runs_started_at ON pipewarden_sync_runs (started_at);

CREATE INDEX ix_pipewarden_sync_runs_table_name ON pipewarden_sync_runs (table_name);

CREATE TABLE pipewarden_schema_changes (
	id SERIAL NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	run_id VARCHAR(36) NOT NULL, 
	column_name VARCHAR(200) NOT NULL, 
	change VARCHAR(20) NOT NULL, 
	detail TEXT, 
	detected_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	backfilled_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_pipewarden_schema_changes_table_name ON pipewarden_schema_changes (table_name);

CREATE TABLE pipewarden_column_kinds (
	table_name VARCHAR(200) NOT NULL, 
	column_name VARCHAR(200) NOT NULL, 
	kind TEXT NOT NULL, 
	PRIMARY KEY (table_name, column_name)
);

CREATE TABLE pipewarden_alerts (
	id BIGSERIAL NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	incident_id BIGINT, 
	table_name VARCHAR(200) NOT NULL, 
	"check" VARCHAR(300) NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	status VARCHAR(30) NOT NULL, 
	severity INTEGER NOT NULL, 
	channel VARCHAR(200), 
	observed FLOAT, 
	expected_low FLOAT, 
	expected_high FLOAT, 
	method TEXT, 
	reason TEXT, 
	details TEXT NOT NULL, 
	run_id VARCHAR(36), 
	flow_run_id VARCHAR(36), 
	state VARCHAR(10) NOT NULL, 
	attempts INTEGER NOT NULL, 
	last_error TEXT, 
	next_attempt_at TIMESTAMP WITH TIME ZONE, 
	claimed_until TIMESTAMP WITH TIME ZONE, 
	sent_at TIMESTAMP WITH TIME ZONE, 
	slack_channel VARCHAR(200), 
	slack_ts VARCHAR(40), 
	PRIMARY KEY (id)
);

CREATE INDEX ix_pipewarden_alerts_created ON pipewarden_alerts (created_at);

CREATE INDEX ix_pipewarden_alerts_state ON pipewarden_alerts (state, id);

CREATE TABLE pipewarden_column_samples (
	id BIGSERIAL NOT NULL, 
	measured_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	run_id VARCHAR(36) NOT NULL, 
	load VARCHAR(10) NOT NULL, 
	column_name VARCHAR(200) NOT NULL, 
	rows BIGINT NOT NULL, 
	nulls BIGINT NOT NULL, 
	sample BYTEA, 
	counts TEXT, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_pipewarden_column_samples_table ON pipewarden_column_samples (table_name, measured_at);

CREATE TABLE pipewarden_incidents (
	id BIGSERIAL NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	"check" VARCHAR(300) NOT NULL, 
	status VARCHAR(30) NOT NULL, 
	severity INTEGER NOT NULL, 
	opened_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	last_seen_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	occurrences INTEGER NOT NULL, 
	closed_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ux_pipewarden_incidents_open ON pipewarden_incidents (table_name, "check") WHERE closed_at IS NULL;

CREATE TABLE pipewarden_metrics (
	id BIGSERIAL NOT NULL, 
	measured_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	metric VARCHAR(200) NOT NULL, 
	value FLOAT NOT NULL, 
	labels TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_pipewarden_metrics_series ON pipewarden_metrics (table_name, metric, measured_at);

CREATE TABLE pipewarden_check_results (
	id BIGSERIAL NOT NULL, 
	checked_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	"check" VARCHAR(300) NOT NULL, 
	status VARCHAR(30) NOT NULL, 
	observed FLOAT, 
	observed_at TIMESTAMP WITH TIME ZONE, 
	expected_low FLOAT, 
	expected_high FLOAT, 
	score FLOAT, 
	method TEXT, 
	reason TEXT, 
	history_size INTEGER, 
	run_id VARCHAR(36) NOT NULL, 
	flow_run_id VARCHAR(36), 
	PRIMARY KEY (id)
);

CREATE INDEX ix_pipewarden_check_results_table ON pipewarden_check_results (table_name, checked_at);

CREATE TABLE pipewarden_quarantine (
	id BIGSERIAL NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	run_id VARCHAR(36) NOT NULL, 
	primary_key TEXT NOT NULL, 
	row_json TEXT NOT NULL, 
	reasons TEXT NOT NULL, 
	checks TEXT NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	quarantined_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	released_at TIMESTAMP WITH TIME ZONE, 
	released_by VARCHAR(200), 
	superseded_at TIMESTAMP WITH TIME ZONE, 
	superseded_by_run VARCHAR(36), 
	PRIMARY KEY (id)
);

CREATE INDEX ix_pipewarden_quarantine_table_status ON pipewarden_quarantine (table_name, status);

CREATE TABLE pipewarden_check_failures (
	id BIGSERIAL NOT NULL, 
	run_id VARCHAR(36) NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	column_name VARCHAR(500) NOT NULL, 
	check_name VARCHAR(500) NOT NULL, 
	failures BIGINT NOT NULL, 
	examples TEXT NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_pipewarden_check_failures_run_id ON pipewarden_check_failures (run_id);

CREATE TABLE pipewarden_reconcile_runs (
	run_id VARCHAR(36) NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	status VARCHAR(20) NOT NULL, 
	action VARCHAR(20) NOT NULL, 
	mode VARCHAR(20), 
	keys_only BOOLEAN NOT NULL, 
	key_range TEXT, 
	rows_compared BIGINT NOT NULL, 
	coverage FLOAT, 
	complete BOOLEAN NOT NULL, 
	stopped_by VARCHAR(20), 
	missing INTEGER NOT NULL, 
	extra INTEGER NOT NULL, 
	changed INTEGER NOT NULL, 
	repaired INTEGER NOT NULL, 
	remaining INTEGER, 
	duration_seconds FLOAT, 
	timings TEXT, 
	error TEXT, 
	flow_run_id VARCHAR(36), 
	PRIMARY KEY (run_id)
);

CREATE INDEX ix_pipewarden_reconcile_runs_table_name ON pipewarden_reconcile_runs (table_name);

CREATE INDEX ix_pipewarden_reconcile_runs_started_at ON pipewarden_reconcile_runs (started_at);

CREATE TABLE pipewarden_reconcile_diffs (
	id SERIAL NOT NULL, 
	run_id VARCHAR(36) NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	diff VARCHAR(10) NOT NULL, 
	key_value TEXT NOT NULL, 
	columns TEXT, 
	source_hash VARCHAR(40), 
	target_hash VARCHAR(40), 
	PRIMARY KEY (id)
);

CREATE INDEX ix_pipewarden_reconcile_diffs_run_id ON pipewarden_reconcile_diffs (run_id);

CREATE TABLE pipewarden_reconcile_repairs (
	id SERIAL NOT NULL, 
	run_id VARCHAR(36) NOT NULL, 
	table_name VARCHAR(200) NOT NULL, 
	key_value TEXT NOT NULL, 
	action VARCHAR(10) NOT NULL, 
	hash_before VARCHAR(40), 
	hash_after VARCHAR(40), 
	repaired_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	reason VARCHAR(40), 
	PRIMARY KEY (id)
);

CREATE INDEX ix_pipewarden_reconcile_repairs_run_id ON pipewarden_reconcile_repairs (run_id);

