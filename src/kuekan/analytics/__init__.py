"""Analytics: outbox consumer, rollups, real-time dashboard, cohorts, heat map, ROI, exports."""
