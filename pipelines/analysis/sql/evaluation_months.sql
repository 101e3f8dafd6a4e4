-- Monthly absence of every pupil up to the end of the follow-up year, with months counted as
-- year * 12 + month - 1 (pupil-level: used for estimation, never shown), relative to the
-- pupil's school that month: absence minus the mean of the other pupils of the school who
-- were not in PPSS by then (a school-wide swing, a flu winter or a new registration routine,
-- then cancels out of every comparison). A school-month with fewer than {min_reference}
-- such pupils takes the district's month instead, and a district-month with too few the
-- city's; `reference` says which. PPSS pupils of every district count as in PPSS, so a
-- district report's references are the full report's.
with firsts as (
    select pupil_key, start_month
    from programme_starts
    where programme = 'PPSS' and start_date <= make_date($year, 12, 31)
),

monthly as (
    select
        a.pupil_key,
        (year(a.month_start) * 12 + month(a.month_start) - 1)::integer as month_index,
        a.absence_rate,
        o.school_unit_code,
        coalesce(u.district, '?') as district,
        coalesce(f.start_month <= year(a.month_start) * 12 + month(a.month_start) - 1, false) as in_ppss
    from pupil_month_attendance as a
    left join pupil_term_outcomes as o
        on o.pupil_key = a.pupil_key
        and o.term_index = year(a.month_start) * 2 + case when month(a.month_start) >= 7 then 1 else 0 end
    left join school_units as u on u.school_unit_code = o.school_unit_code
    left join firsts as f on f.pupil_key = a.pupil_key
    where a.absence_rate is not null and a.month_start <= make_date($year, 12, 31)
),

-- sums and counts of the pupils not in PPSS, per school, district and city month; a pupil's
-- own absence is taken out of its reference (leave one out). Sums in exact decimals: a
-- floating sum depends on the order DuckDB adds in, and the same store must give the same
-- estimate whatever its layout (a report of year Y equals one from a store cut at Y's end).
exact as (
    select *, absence_rate::decimal(38, 15) as rate_exact from monthly
),

-- the sums per school, district and city month as aggregates joined back (three hash
-- aggregates, not three sorted windows over every pupil-month)
school_months as (
    select
        school_unit_code,
        month_index,
        sum(rate_exact) filter (where not in_ppss) as s_school,
        count(*) filter (where not in_ppss) as n_school
    from exact
    where school_unit_code is not null
    group by all
),

district_months as (
    select
        district,
        month_index,
        sum(rate_exact) filter (where not in_ppss) as s_district,
        count(*) filter (where not in_ppss) as n_district
    from exact
    group by all
),

city_months as (
    select
        month_index,
        sum(rate_exact) filter (where not in_ppss) as s_city,
        count(*) filter (where not in_ppss) as n_city
    from exact
    group by all
),

referenced as (
    select e.*, s.s_school, s.n_school, d.s_district, d.n_district, c.s_city, c.n_city
    from exact as e
    left join school_months as s on s.school_unit_code = e.school_unit_code and s.month_index = e.month_index
    left join district_months as d on d.district = e.district and d.month_index = e.month_index
    left join city_months as c on c.month_index = e.month_index
),

loo as (
    select
        *,
        case when in_ppss then 0 else 1 end as own,
        case when in_ppss then 0 else rate_exact end as own_rate
    from referenced
)

select
    pupil_key,
    month_index,
    absence_rate as raw_absence_rate,
    case
        when school_unit_code is not null and n_school - own >= {min_reference} then 'school'
        when district <> '?' and n_district - own >= {min_reference} then 'district'
        else 'city'
    end as reference,
    absence_rate - case
        when school_unit_code is not null and n_school - own >= {min_reference}
            then (s_school - own_rate)::double / (n_school - own)
        when district <> '?' and n_district - own >= {min_reference}
            then (s_district - own_rate)::double / (n_district - own)
        else (s_city - own_rate)::double / nullif(n_city - own, 0)
    end as absence_rate
from loo
