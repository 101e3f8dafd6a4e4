-- The store's load-side tables. `src_*` hold validated rows, pseudonymised, one table per
-- input kind, tagged with the file version they came from (load_log.file_id).
create table if not exists meta (key varchar primary key, value varchar);

create sequence if not exists file_id_seq;
create table if not exists load_log (
    file_id integer primary key,
    ingest_id integer not null,
    path varchar not null,
    kind varchar not null,
    checksum varchar not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    rows_unused bigint not null,
    rows_invalid bigint not null,     -- failed a rule of the file's own suite
    rows_held bigint not null,        -- failed a check against other files (re-checked every ingest)
    status varchar not null,          -- loaded | rejected | superseded | removed
    message varchar,
    loaded_at timestamp not null,
    check (rows_read = rows_loaded + rows_quarantined + rows_unused),
    check (rows_quarantined = rows_invalid + rows_held)
);

create table if not exists quarantine (
    file_id integer not null,
    path varchar not null,
    location varchar not null,        -- row number, JSON path or XML element path
    column_name varchar,
    rule varchar not null,
    message varchar not null,
    is_cross_file boolean not null default false  -- recomputed on every ingest (checks.sql)
);

-- Rows that passed their file's suite but fail a check against other files; staging
-- leaves them out. Rebuilt on every ingest, so a row comes back once its reference arrives.
create table if not exists held_rows (
    source varchar not null,          -- src table
    file_id integer not null,
    location varchar not null,
    rule varchar not null
);

create table if not exists src_persons (
    file_id integer, location varchar, person_ref varchar, pupil_key varchar, gender varchar,
    birth_year integer, security_marking varchar, is_protected boolean
);
create table if not exists src_enrolments (
    file_id integer, location varchar, person_ref varchar, school_ref varchar, school_year integer,
    school_type varchar, start_date date, end_date date, cancelled boolean
);
create table if not exists src_organisations (
    file_id integer, org_ref varchar, school_unit_code varchar, display_name varchar,
    municipality_code varchar
);
create table if not exists src_school_units (
    file_id integer, school_unit_code varchar, school_name varchar, district varchar, huvudman varchar
);
create table if not exists src_grade_exports (
    file_id integer, file_name varchar, export_from date, export_tom date
);
create table if not exists src_grade_export_pupils (file_id integer, person_ref varchar);
create table if not exists src_grades (
    file_id integer, location varchar, seq bigint, person_ref varchar, subject varchar, language varchar,
    grade varchar, term varchar, term_year integer, decision_date date, is_retest boolean,
    is_final boolean, school_ref varchar
);
create table if not exists src_attendance (
    file_id integer, location varchar, person_ref varchar, activity_ref varchar, start_date date, end_date date,
    attendance bigint, valid_absence bigint, invalid_absence bigint, other_attendance bigint,
    reported bigint, offered bigint
);
create table if not exists src_register (
    file_id integer, location varchar, row_no bigint, pupil_key varchar, programme varchar, district varchar,
    school_unit_code varchar, start_date date, end_date date,
    selection_reasons varchar[], interventions varchar[]
);

-- What a loaded file's load_log message says besides its counts; checks.sql writes the message
-- from the final counts, so it never contradicts them.
create table if not exists load_notes (file_id integer primary key, unused_note varchar, note varchar);
-- Every file seen by an ingest, and contents replaced by a corrected file: a corrected file
-- supersedes an old copy of itself elsewhere in the delivery, and that copy stays superseded.
create table if not exists seen_files (path varchar, checksum varchar, ingest_id integer);
create table if not exists replaced_versions (checksum varchar, by_path varchar);
