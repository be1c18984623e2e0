"""Every vehicle signal busd knows: name, type, unit, freshness limit.

Names are short and dotted, the same in code, payloads and the display. Each
has a COVESA VSS equivalent (listed in the README) so the office can map them.
A signal older than its freshness limit reads as stale everywhere; the limit
is a few times the source's normal update period, so one lost frame is not an
alarm but a silent bus is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    ENUM = "enum"


@dataclass(frozen=True, slots=True)
class SignalSpec:
    name: str
    kind: Kind
    unit: str
    freshness_s: float
    vss: str
    description: str
    choices: tuple[str, ...] = ()

    def coerce(self, value: object) -> float | int | bool | str:
        """The value in this signal's type; raises ValueError when it does not fit."""
        if self.kind is Kind.FLOAT:
            if type(value) is float and math.isfinite(value):  # most values: decoded CAN
                return value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{self.name} expects a number, got {value!r}")
            result = float(value)
            if not math.isfinite(result):
                raise ValueError(f"{self.name} got a non-finite number")
            return result
        if self.kind is Kind.INT:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{self.name} expects an integer, got {value!r}")
            if value != int(value):
                raise ValueError(f"{self.name} expects an integer, got {value!r}")
            return int(value)
        if self.kind is Kind.BOOL:
            if isinstance(value, bool):
                return value
            if isinstance(value, int | float):
                return value != 0
            raise ValueError(f"{self.name} expects a boolean, got {value!r}")
        text = str(value)
        if text not in self.choices:
            raise ValueError(f"{self.name} expects one of {', '.join(self.choices)}, got {value!r}")
        return text


# Battery (BMS on CAN, 10 Hz)
BATTERY_SOC = "battery.soc"
BATTERY_VOLTAGE = "battery.voltage"
BATTERY_CURRENT = "battery.current"
BATTERY_POWER = "battery.power"
BATTERY_TEMP_MIN = "battery.temp_min"
BATTERY_TEMP_MAX = "battery.temp_max"
BATTERY_CELL_V_MIN = "battery.cell_v_min"
BATTERY_CELL_V_MAX = "battery.cell_v_max"
BATTERY_SOH = "battery.soh"
BATTERY_FAULT = "battery.fault"
# Charger and charge port (CAN, 1 Hz)
CHARGER_PLUGGED = "charger.plugged"
CHARGER_STATE = "charger.state"
CHARGER_POWER = "charger.power"
CHARGER_SESSION_ENERGY = "charger.session_energy"
CHARGER_FAULT_CODE = "charger.fault_code"
# Vehicle (CAN, 10-20 Hz)
VEHICLE_SPEED = "vehicle.speed"
VEHICLE_ODOMETER = "vehicle.odometer"
VEHICLE_READY = "vehicle.ready"
VEHICLE_PARKING_BRAKE = "vehicle.parking_brake"
VEHICLE_DOOR_OPEN = "vehicle.door_open"
VEHICLE_OUTSIDE_TEMP = "vehicle.outside_temp"
VEHICLE_HVAC_POWER = "vehicle.hvac_power"
VEHICLE_AUX_VOLTAGE = "vehicle.aux_voltage"
# GPS (gpsd or NMEA, 1 Hz)
GPS_FIX = "gps.fix"
GPS_LAT = "gps.lat"
GPS_LON = "gps.lon"
GPS_SPEED = "gps.speed"
GPS_HEADING = "gps.heading"
GPS_TIME = "gps.time"
GPS_HDOP = "gps.hdop"
GPS_SATELLITES = "gps.satellites"
# Wheelchair lift (Modbus RTU, or FMS DC1 on CAN)
LIFT_STATE = "lift.state"
LIFT_INTERLOCK = "lift.interlock"
LIFT_DOOR_OPEN = "lift.door_open"
LIFT_CYCLES = "lift.cycles"

CHARGER_STATES = ("idle", "charging", "complete", "fault")
GPS_FIXES = ("none", "2d", "3d")
LIFT_STATES = ("stowed", "deploying", "deployed", "stowing", "fault")

_VSS = "Vehicle."
_BATT = _VSS + "Powertrain.TractionBattery."
_CHG = _BATT + "Charging."

_SPECS = (
    SignalSpec(BATTERY_SOC, Kind.FLOAT, "%", 3.0, _BATT + "StateOfCharge.Displayed",
               "State of charge as the BMS shows it"),
    SignalSpec(BATTERY_VOLTAGE, Kind.FLOAT, "V", 2.0, _BATT + "CurrentVoltage", "Pack voltage"),
    SignalSpec(BATTERY_CURRENT, Kind.FLOAT, "A", 2.0, _BATT + "CurrentCurrent",
               "Pack current, positive = discharge"),
    SignalSpec(BATTERY_POWER, Kind.FLOAT, "kW", 2.0, _BATT + "CurrentPower",
               "Pack power, derived from voltage and current, positive = discharge"),
    SignalSpec(BATTERY_TEMP_MIN, Kind.FLOAT, "°C", 5.0, _BATT + "CellTemperature.Min",
               "Coldest cell temperature"),
    SignalSpec(BATTERY_TEMP_MAX, Kind.FLOAT, "°C", 5.0, _BATT + "CellTemperature.Max",
               "Warmest cell temperature"),
    SignalSpec(BATTERY_CELL_V_MIN, Kind.FLOAT, "V", 5.0, _BATT + "CellVoltage.Min",
               "Lowest cell voltage"),
    SignalSpec(BATTERY_CELL_V_MAX, Kind.FLOAT, "V", 5.0, _BATT + "CellVoltage.Max",
               "Highest cell voltage"),
    SignalSpec(BATTERY_SOH, Kind.FLOAT, "%", 60.0, _BATT + "StateOfHealth", "State of health"),
    SignalSpec(BATTERY_FAULT, Kind.INT, "", 5.0, _BATT + "(no VSS equivalent: fault bits)",
               "BMS fault flags, 0 = none"),
    SignalSpec(CHARGER_PLUGGED, Kind.BOOL, "", 5.0, _CHG + "IsChargingCableConnected",
               "Charge cable plugged in"),
    SignalSpec(CHARGER_STATE, Kind.ENUM, "", 5.0, _CHG + "IsCharging (extended to a state)",
               "On-board charger state", CHARGER_STATES),
    SignalSpec(CHARGER_POWER, Kind.FLOAT, "kW", 5.0, _CHG + "ChargeRate (as power)",
               "Charging power into the pack"),
    SignalSpec(CHARGER_SESSION_ENERGY, Kind.FLOAT, "kWh", 5.0,
               _CHG + "EventCharge.EnergyAdded", "Energy added this charging session"),
    SignalSpec(CHARGER_FAULT_CODE, Kind.INT, "", 5.0, _CHG + "(no VSS equivalent: fault code)",
               "Charger fault code, 0 = none"),
    SignalSpec(VEHICLE_SPEED, Kind.FLOAT, "km/h", 1.0, _VSS + "Speed", "Wheel-based speed"),
    SignalSpec(VEHICLE_ODOMETER, Kind.FLOAT, "km", 5.0, _VSS + "TraveledDistanceHighRes",
               "High-resolution distance (FMS VDHR)"),
    SignalSpec(VEHICLE_READY, Kind.BOOL, "", 2.0, _VSS + "LowVoltageSystemState (READY)",
               "Drive-ready (HV on)"),
    SignalSpec(VEHICLE_PARKING_BRAKE, Kind.BOOL, "", 2.0, _VSS + "Chassis.ParkingBrake.IsEngaged",
               "Parking brake engaged"),
    SignalSpec(VEHICLE_DOOR_OPEN, Kind.BOOL, "", 2.0, _VSS + "Cabin.Door.Row1.PassengerSide.IsOpen",
               "Passenger door open"),
    SignalSpec(VEHICLE_OUTSIDE_TEMP, Kind.FLOAT, "°C", 10.0, _VSS + "Exterior.AirTemperature",
               "Outside air temperature"),
    SignalSpec(VEHICLE_HVAC_POWER, Kind.FLOAT, "kW", 5.0, _VSS + "Cabin.HVAC.PowerConsumption",
               "Heating/cooling electrical power"),
    SignalSpec(VEHICLE_AUX_VOLTAGE, Kind.FLOAT, "V", 5.0, _VSS + "LowVoltageBattery.CurrentVoltage",
               "12 V auxiliary battery voltage"),
    SignalSpec(GPS_FIX, Kind.ENUM, "", 3.0, _VSS + "CurrentLocation.GNSSReceiver.FixType",
               "GNSS fix", GPS_FIXES),
    SignalSpec(GPS_LAT, Kind.FLOAT, "deg", 3.0, _VSS + "CurrentLocation.Latitude",
               "Latitude, WGS84"),
    SignalSpec(GPS_LON, Kind.FLOAT, "deg", 3.0, _VSS + "CurrentLocation.Longitude",
               "Longitude, WGS84"),
    SignalSpec(GPS_SPEED, Kind.FLOAT, "km/h", 3.0, _VSS + "CurrentLocation (speed)",
               "Speed over ground"),
    SignalSpec(GPS_HEADING, Kind.FLOAT, "deg", 3.0, _VSS + "CurrentLocation.Heading",
               "Course over ground"),
    SignalSpec(GPS_TIME, Kind.FLOAT, "s", 3.0, _VSS + "CurrentLocation.Timestamp",
               "GNSS time, UTC seconds since the epoch"),
    SignalSpec(GPS_HDOP, Kind.FLOAT, "", 3.0, _VSS + "CurrentLocation.HorizontalAccuracy (HDOP)",
               "Horizontal dilution of precision"),
    SignalSpec(GPS_SATELLITES, Kind.INT, "", 10.0, _VSS + "CurrentLocation.GNSSReceiver (used)",
               "Satellites used in the fix"),
    SignalSpec(LIFT_STATE, Kind.ENUM, "", 3.0, _VSS + "Body.WheelchairLift.Position (state)",
               "Wheelchair lift state", LIFT_STATES),
    SignalSpec(LIFT_INTERLOCK, Kind.BOOL, "", 3.0, _VSS + "Body.WheelchairLift.IsInterlockEngaged",
               "Lift interlock engaged"),
    SignalSpec(LIFT_DOOR_OPEN, Kind.BOOL, "", 3.0, _VSS + "Body.WheelchairLift.IsDoorOpen",
               "Lift door open"),
    SignalSpec(LIFT_CYCLES, Kind.INT, "", 30.0, _VSS + "Body.WheelchairLift.CycleCount",
               "Lift cycle counter"),
)

SIGNALS: dict[str, SignalSpec] = {spec.name: spec for spec in _SPECS}


def spec(name: str) -> SignalSpec:
    try:
        return SIGNALS[name]
    except KeyError:
        raise KeyError(f"unknown signal {name!r}") from None
