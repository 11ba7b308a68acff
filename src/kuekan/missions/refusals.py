"""Missions' refusal codes, registered in the one catalogue (:mod:`kuekan.errors`).

The package's ``__init__`` imports this module, so any use of the package registers them.
"""

from __future__ import annotations

from kuekan.errors import register

REFUSALS = register({
    "outside_geofence": (403, "You are outside the mission's area", "คุณอยู่นอกพื้นที่ของภารกิจ"),
    "inaccurate_location": (403, "Your location is not accurate enough; move to open sky and retry",
                            "ตำแหน่งของคุณไม่แม่นยำพอ โปรดลองใหม่ในที่โล่ง"),
    "venue_code_invalid": (403, "The venue code is wrong or has expired",
                           "รหัสสถานที่ไม่ถูกต้องหรือหมดอายุแล้ว"),
    "mission_not_active": (409, "This mission is not active now", "ภารกิจนี้ไม่ได้เปิดอยู่ในขณะนี้"),
    "already_completed": (409, "You have already completed this mission for this period",
                          "คุณทำภารกิจนี้ครบแล้วในรอบนี้"),
    "mission_locked": (409, "Complete the previous step of this chain first",
                       "โปรดทำภารกิจขั้นก่อนหน้าให้สำเร็จก่อน"),
    "mission_not_checkin": (409, "This mission is not completed by checking in",
                            "ภารกิจนี้ไม่ได้ทำสำเร็จด้วยการเช็คอิน"),
    "mission_not_for_audience": (403, "This mission is not open to your member group",
                                 "ภารกิจนี้ไม่เปิดสำหรับกลุ่มสมาชิกของคุณ"),
    "mission_not_found": (404, "Mission not found", "ไม่พบภารกิจ"),
    "mission_code_taken": (409, "A mission with this code exists", "รหัสภารกิจนี้ถูกใช้แล้ว"),
    "venue_code_not_used": (409, "This mission does not use venue codes",
                            "ภารกิจนี้ไม่ได้ใช้รหัสสถานที่"),
})
