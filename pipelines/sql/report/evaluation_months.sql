-- Monthly absence of the pupils in the matching frame, for the event-time estimator.
select m.pupil_key, m.month_start, m.absence_rate
from pupil_month_attendance as m
where m.absence_rate is not null
    and m.pupil_key in (
        select pupil_key from pupil_term_outcomes where is_baseline_term
        union
        select pupil_key from pupil_term_outcomes
        where pupil_key not in (select pupil_key from programme_enrolments)
    )
