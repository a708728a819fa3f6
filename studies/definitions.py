"""The definitions shown beside every result (admin) — the same text as docs/metrics.md."""

DEFINITIONS = {
    "renewal_rate": (
        "Eligible: the segment's non-canceled campaigns whose ends_on falls in the period. "
        "Renewed: a non-canceled campaign with renewed_from pointing at it exists (whenever "
        "it was created). renewal_rate = renewed / total (null when none is eligible), with a "
        "95% Wilson interval (z = 1.959963984540054)."
    ),
    "revenue_growth": (
        "Revenue: each non-canceled campaign's deal_value recognised evenly over its days, "
        "deal_value * (days inside the period) / (ends_on - starts_on + 1), summed per account "
        "exactly and rounded to cents (half up) only in the result. The previous period has "
        "the same number of days and ends the day before period_start. growth_rate = "
        "(revenue - previous) / previous (null when previous is 0). Accounts with revenue in "
        "either period are growing, flat or shrinking; median_account_growth is the median "
        "growth over accounts with previous revenue > 0."
    ),
    "campaign_efficiency": (
        "Over the metric rows dated in the period of non-canceled campaigns, per campaign "
        "S = Σ spend, V = Σ revenue. For campaigns with S > 0: ROI = (V - S) / S, ROAS = V / S; "
        "avg_roi, median_roi, avg_roas over those. pooled_roas = Σ revenue / Σ spend, cpa = "
        "Σ spend / Σ conversions (money), ctr = Σ clicks / Σ impressions, conversion_rate = "
        "Σ conversions / Σ clicks; each null when its denominator is 0."
    ),
    "persona_impact": (
        "Per persona: accounts created by period_end, the renewal-rate, revenue-growth and "
        "campaign-efficiency results for its accounts, its share of the period's recognised "
        "revenue, and support tickets of its accounts opened in the period (total and per "
        "account); from 2026.11-2 also each account's latest health check on or before "
        "period_end (accounts checked, how many healthy / at risk / critical, the mean score "
        "rounded half up to cents of a point) and the share of accounts that completed "
        "onboarding (an onboarding_completed usage event) by period_end."
    ),
    "revenue_cohorts": (
        "Accounts grouped by the calendar month of their first non-canceled campaign's start "
        "(months of the period). For each cohort and each month since, up to the period's last "
        "month: recognised revenue ÷ the cohort's month-0 revenue (net revenue retention; null "
        "when month 0 has none) and the share of the cohort's accounts with revenue (logo "
        "retention)."
    ),
}
