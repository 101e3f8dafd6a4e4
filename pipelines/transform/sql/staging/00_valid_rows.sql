-- Loaded rows minus those held by a check across files (checks.sql): everything
-- downstream reads these views, never the src_* tables directly.
create or replace view valid_persons as
select * from src_persons as s
where not exists (select 1 from held_rows as h where h.file_id = s.file_id and h.location = s.location);

create or replace view valid_enrolments as
select * from src_enrolments as s
where not exists (select 1 from held_rows as h where h.file_id = s.file_id and h.location = s.location);

create or replace view valid_grades as
select * from src_grades as s
where not exists (select 1 from held_rows as h where h.file_id = s.file_id and h.location = s.location);

create or replace view valid_attendance as
select * from src_attendance as s
where not exists (select 1 from held_rows as h where h.file_id = s.file_id and h.location = s.location);

create or replace view valid_register as
select * from src_register as s
where not exists (select 1 from held_rows as h where h.file_id = s.file_id and h.location = s.location);
