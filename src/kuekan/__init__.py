"""KueKan (คือกัน): the points ledger and transaction service of Korat's loyalty platform."""
