-- Share of PPSS pupils per district with each selection reason or intervention
-- (enrolments started up to the end of the follow-up year), only $districts when given.
-- {column} is substituted by name.
with enrolments as (
    select pupil_key, district, unnest({column}) as term_value
    from programme_enrolments
    where programme = 'PPSS' and year(start_date) <= $year
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
),

per_district as (
    select district, count(distinct pupil_key) as n_district,
        list(distinct pupil_key) as n_district__members
    from programme_enrolments
    where programme = 'PPSS' and year(start_date) <= $year
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
    group by district
)

select district, term_value, count(distinct pupil_key) as n_pupils,
    list(distinct pupil_key) as n_pupils__members, any_value(n_district) as n_district,
    any_value(n_district__members) as n_district__members
from enrolments
inner join per_district using (district)
group by all
order by district, term_value
