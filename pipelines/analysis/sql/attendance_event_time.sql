-- Monthly absence around enrolment (event time: months since the month of first PPSS
-- enrolment), for pupils first enrolled up to the end of the follow-up year. The comparison
-- value for a pupil-month is the mean absence, that calendar month, of pupils never in any
-- programme in the school where the pupil was enrolled. With $districts: only pupils whose first
-- PPSS enrolment was in those districts.
with firsts as (
    select pupil_key, start_date, school_unit_code
    from programme_starts
    where programme = 'PPSS' and year(start_date) <= $year
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
),

month_school as (
    select m.pupil_key, m.month_start, m.absence_rate, o.school_unit_code
    from pupil_month_attendance as m
    inner join terms as t on m.month_start between t.term_start and t.term_end
    inner join pupil_term_outcomes as o on o.pupil_key = m.pupil_key and o.term = t.term and o.term_year = t.term_year
    where m.pupil_key not in (select pupil_key from programme_starts)
),

reference as (
    select school_unit_code, month_start, avg(absence_rate) as reference_rate, count(*) as n_reference
    from month_school
    where absence_rate is not null
    group by all
),

final as (
    select
        f.pupil_key,
        datediff('month', date_trunc('month', f.start_date), m.month_start) as event_month,
        m.absence_rate,
        r.reference_rate
    from firsts as f
    inner join pupil_month_attendance as m using (pupil_key)
    left join reference as r on r.school_unit_code = f.school_unit_code and r.month_start = m.month_start
    where m.absence_rate is not null
)

select * from final where event_month between -6 and 12
