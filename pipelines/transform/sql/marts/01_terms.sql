-- Grain: one row per term. HT = 1 July-31 December, VT = 1 January-30 June (data contract 4).
-- Terms run from the first to the last one the grade and attendance data reach, so an
-- ongoing enrolment does not create empty future terms.
create or replace table terms as
with years as (
    select min(year(d)) as first_year, max(year(d)) as last_year, max(d) as last_day
    from (
        select make_date(term_year, case term when 'VT' then 1 else 7 end, 1) as d from stg_grades
        union all select start_date from stg_attendance
        union all select end_date from stg_attendance
    )
),

final as (
    select
        t.term,
        y.year as term_year,
        case t.term when 'VT' then make_date(y.year, 1, 1) else make_date(y.year, 7, 1) end as term_start,
        case t.term when 'VT' then make_date(y.year, 6, 30) else make_date(y.year, 12, 31) end as term_end,
        y.year * 2 + case t.term when 'HT' then 1 else 0 end as term_index,
        case t.term when 'HT' then y.year else y.year - 1 end as school_year_start
    from years
    cross join (select unnest(range(first_year, last_year + 1)) as year from years) as y
    cross join (values ('VT'), ('HT')) as t(term)
    where years.first_year is not null
        and (case t.term when 'VT' then make_date(y.year, 1, 1) else make_date(y.year, 7, 1) end) <= years.last_day
)

select * from final order by term_index;
