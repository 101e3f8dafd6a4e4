-- Checks across files, run after every ingest over everything loaded (data contract 3).
-- A row here passed its own file's suite but contradicts another file: it is held
-- (left out of staging), listed in `quarantine` with is_cross_file, and counted in its
-- file's load_log row. Everything is recomputed each time, so a grade held for want of
-- its persons export is loaded as soon as that export arrives.
delete from held_rows;
delete from quarantine where is_cross_file;

-- Identity: one person id with two identity numbers anywhere in the loaded persons files.
insert into held_rows
select 'src_persons', file_id, location, 'identity_conflict_id'
from src_persons
where person_ref in (select person_ref from src_persons group by person_ref having count(distinct pupil_key) > 1);

-- Identity: one identity number on two person ids within one delivery folder. Across
-- folders this is allowed: a platform change gives a pupil a new id (data contract 2).
insert into held_rows
with persons as (
    select p.file_id, p.location, p.person_ref, p.pupil_key, regexp_replace(l.path, '/[^/]*$', '') as folder
    from src_persons as p
    inner join load_log as l using (file_id)
),

conflicts as (
    select pupil_key, folder from persons group by all having count(distinct person_ref) > 1
)

select 'src_persons', file_id, location, 'identity_conflict_number'
from persons
inner join conflicts using (pupil_key, folder);

create or replace temp view ok_persons as
select p.*
from src_persons as p
where not exists (select 1 from held_rows as h where h.file_id = p.file_id and h.location = p.location);

-- References: grades and attendance of a person id no loaded persons export holds.
insert into held_rows
select 'src_grades', g.file_id, g.location, 'unknown_pupil'
from src_grades as g
where not exists (select 1 from ok_persons as p where p.person_ref = g.person_ref);

insert into held_rows
select 'src_attendance', a.file_id, a.location, 'unknown_student'
from src_attendance as a
where not exists (select 1 from ok_persons as p where p.person_ref = a.person_ref);

-- References: an enrolment at an organisation id that is no loaded school unit.
insert into held_rows
select 'src_enrolments', e.file_id, e.location, 'unknown_school_unit'
from src_enrolments as e
where not exists (select 1 from src_organisations as o where o.org_ref = e.school_ref);

-- References: a register row whose pupil no persons export holds, or whose school unit
-- code is in neither skolenheter.csv nor the Organisations export.
insert into held_rows
select 'src_register', r.file_id, r.location, 'pupil_not_in_persons'
from src_register as r
where not exists (select 1 from ok_persons as p where p.pupil_key = r.pupil_key);

insert into held_rows
select 'src_register', r.file_id, r.location, 'unknown_school_unit_code'
from src_register as r
where r.school_unit_code is not null
    and r.school_unit_code not in (select school_unit_code from src_school_units)
    and r.school_unit_code not in (select school_unit_code from src_organisations where school_unit_code is not null);

-- References: a Stadsdel that skolenheter.csv does not know. Districts are printed in reports,
-- so free text typed there (a note, a name) is held rather than published.
insert into held_rows
select 'src_register', r.file_id, r.location, 'unknown_district'
from src_register as r
where r.district is not null
    and lower(trim(r.district)) not in (select lower(trim(district)) from src_school_units where district is not null);

-- Time: two records for the same pupil and activity over overlapping periods are a
-- conflict, not a sum (data contract 1.4). The same record delivered twice is not.
insert into held_rows
select distinct 'src_attendance', a.file_id, a.location, 'attendance_overlap'
from src_attendance as a
inner join src_attendance as b
    on a.person_ref = b.person_ref
    and a.activity_ref = b.activity_ref
    and a.start_date <= b.end_date
    and b.start_date <= a.end_date
    and (a.file_id <> b.file_id or a.location <> b.location)
where not (
    a.start_date = b.start_date and a.end_date = b.end_date and a.offered is not distinct from b.offered
    and a.valid_absence is not distinct from b.valid_absence
    and a.invalid_absence is not distinct from b.invalid_absence
    and a.attendance is not distinct from b.attendance
);

-- Time: two open enrolments of one pupil in one programme; the latest stays, the
-- earlier ones wait for their Utskriven.
insert into held_rows
select 'src_register', file_id, location, 'programme_open_twice'
from (
    select *, max(start_date) over (partition by pupil_key, programme) as latest_start
    from src_register
    where end_date is null
)
where start_date < latest_start;

-- Quarantine entries: where, which column, which rule, and what to do.
insert into quarantine
with messages(rule, column_name, message) as (
    values
    ('identity_conflict_id', 'civicNo.value',
     'the same person id carries two identity numbers in the loaded persons files; the person is left out until the persons export is corrected'),
    ('identity_conflict_number', 'id',
     'the same identity number belongs to two person ids in one delivery folder; both are left out until the persons export is corrected (across delivery folders, as after a platform change, this is allowed)'),
    ('unknown_pupil', 'elev/@id',
     'no loaded person record holds this pupil id (it is missing, or itself quarantined): load or correct the persons export and ingest again (held rows are checked again on every ingest)'),
    ('unknown_student', 'student.id',
     'no loaded person record holds this student id (it is missing, or itself quarantined): load or correct the persons export and ingest again (held rows are checked again on every ingest)'),
    ('unknown_school_unit', 'enroledAt.id',
     'the enrolment names an organisation id that is no loaded school unit: load the Organisations export that holds it'),
    ('pupil_not_in_persons', 'Personnummer',
     'no loaded persons export holds this Personnummer: check the number in the register, or load the persons export that holds the pupil'),
    ('unknown_school_unit_code', 'Skolenhetskod',
     'Skolenhetskod is in neither skolenheter.csv nor the Organisations export: correct the code, or add the school unit to skolenheter.csv'),
    ('attendance_overlap', 'startDate/endDate',
     'another record for the same pupil and activity covers part of this period with other minutes: a conflict, not a sum; ask for a corrected export'),
    ('unknown_district', 'Stadsdel',
     'Stadsdel is no stadsdel listed in skolenheter.csv: correct the cell (or leave it empty to take the school unit''s stadsdel), or add the stadsdel to skolenheter.csv'),
    ('programme_open_twice', 'Utskriven',
     'a later enrolment of the same pupil in the same programme is also open: fill in Utskriven for this one')
)

select h.file_id, l.path, h.location, m.column_name, h.rule, m.message, true
from (select distinct * from held_rows) as h
inner join load_log as l using (file_id)
inner join messages as m using (rule);

-- Counts: a held row moves from loaded to quarantined (enrolments are parts of a person row).
update load_log
set rows_held = 0, rows_quarantined = rows_invalid, rows_loaded = rows_read - rows_unused - rows_invalid
where status = 'loaded';

update load_log
set
    rows_held = h.n,
    rows_quarantined = load_log.rows_invalid + h.n,
    rows_loaded = load_log.rows_read - load_log.rows_unused - load_log.rows_invalid - h.n
from (
    select file_id, count(distinct location) as n
    from held_rows
    where source <> 'src_enrolments'
    group by file_id
) as h
where load_log.file_id = h.file_id and load_log.status = 'loaded';

-- Messages of loaded files from their final counts (a held row moved above changes them).
update load_log
set message = concat_ws(
    ', ',
    load_log.rows_loaded || ' loaded',
    case when load_log.rows_invalid > 0 then load_log.rows_invalid || ' quarantined' end,
    case when load_log.rows_held > 0 then load_log.rows_held || ' held by checks across files' end,
    case
        when load_log.rows_unused > 0
            then load_log.rows_unused || ' not used' || coalesce(' (' || n.unused_note || ')', '')
    end
) || coalesce('; ' || n.note, '')
from load_notes as n
where load_log.file_id = n.file_id and load_log.status = 'loaded';
