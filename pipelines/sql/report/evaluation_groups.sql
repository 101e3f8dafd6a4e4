-- Each enrolled pupil's selection reasons, interventions, district (first enrolment) and gender.
select
    p.pupil_key,
    arg_min(p.selection_reasons, p.start_date) as selection_reasons,
    arg_min(p.interventions, p.start_date) as interventions,
    arg_min(p.district, p.start_date) as district,
    case any_value(o.gender) when 'F' then 'Flickor' when 'M' then 'Pojkar' end as gender_label
from programme_enrolments as p
left join pupil_term_outcomes as o using (pupil_key)
group by p.pupil_key
having year(min(p.start_date)) <= $year
