"""Column layout of the arrays the kernels read and write.

The compiler writes these columns, the kernels read them by these names, and the Python
wrappers decode the outputs with them: one definition, no magic indexes.
"""

from __future__ import annotations

# ---- offer table: int64[n_offers, OFFER_COLS] -------------------------------------------
# Columns are grouped by when a candidate reads them, a 64-byte cache line (8 columns) at a
# time, and a row is six whole lines (the block starts each table on a line boundary):
# lines 0-2 hold what the evaluation of every discount candidate reads (group, mode, kind,
# checks 11-13, the reward and its caps); line 3 (from O_RARE_FROM) bundles, the funder and
# the columns the hot table below copies; lines 4-5 (from O_CHECKS_FROM) what only checks 1-9
# read, which run where the hot table says one applies. Candidate discovery prefetches lines
# 0-2 of each candidate it keeps, and lines 4-5 only where the checks will read them.
O_PHASE = 0
O_GROUP = 1  # group number or NO_GROUP
O_MODE = 2
O_KIND = 3
O_MIN_BASKET = 4
O_MIN_QTY = 5
O_MIN_AMOUNT = 6
O_MAX_DISCOUNT = 7  # 0 = no cap
O_P1 = 8  # reward parameters, see compiler._reward_params
O_P2 = 9
O_P3 = 10
O_PER_TX = 11  # 0 = no cap
O_MAX_BASKET = 12  # Conditions.max_basket_minor; 0 = no bound
O_MAX_AMOUNT = 13  # Conditions.max_amount_minor; 0 = no bound
O_UNITS_GROUPS = 14  # Limits.units_in_groups_of; 0 = off
O_FUNDED_BPS = 15
# target_units (O_P1 = units, O_P2 = every, O_P3 = the value of the form below)
O_TU_PICK = 16  # TargetUnits.Pick: 0 cheapest, 1 most expensive
O_TU_FORM = 17  # TU_PERCENT, TU_AMOUNT or TU_PRICE: which of TargetUnits.value is set
O_MAX_UNITS_LINE = 18  # Limits.max_units_per_line; 0 = no cap
O_MAX_UNITS = 19  # Limits.max_units (per transaction); 0 = no cap
O_LADDER_OFF = 20
O_LADDER_LEN = 21
O_ORDER_POS = 22  # position in evaluation order
# buy_get (O_P1 = buy_qty, O_P2 = get_qty, O_P3 = the value, O_TU_FORM = its form)
O_GET_SET = 23  # BuyGet.get, or a Gift's {skus: [sku]}: its index in RuleArrays.sets (else 0)
# unit_rates: O_P1 = first_minor, O_P2 = additional_minor, O_P3 = max_units (0 = every unit)
O_RARE_FROM = 24  # line 3: bundles, the funder, the hot table's copies
O_BUNDLE_OFF = 24
O_BUNDLE_LEN = 25
O_FUNDER = 26  # index into CompiledRules.funder_ids
O_ACTIVATION = 27  # 0 automatic, 1 coupon
O_SCOPE = 28  # product set index
O_STARTS = 29  # epoch seconds, inclusive
O_ENDS = 30  # epoch seconds, exclusive
O_WEEKDAYS = 31  # bit d set = ISO weekday d allowed; 0 = every day
O_CHECKS_FROM = 32  # lines 4-5: the columns that only checks 1-9 read
O_FROM_HOUR = 32
O_TO_HOUR = 33
O_STORE_LEN = 34
O_STORE_OFF = 35  # slice of RuleArrays.stores; length 0 = every store
O_CHANNEL_MASK = 36  # 0 = every channel
O_NEEDS_MEMBER = 37
O_TIER_MASK = 38  # 0 = any tier
O_SEGMENT_MASK = 39  # 0 = no segment condition
O_BIRTHDAY = 40
O_ATTR_MASK = 41  # member-attribute predicates that must all hold; 0 = none
# recurrence (Conditions.recurrence), read only when O_REC_FREQ != 0
O_REC_FREQ = 42  # 0 none; the recurrence module defines the others
O_REC_INTERVAL = 43
O_REC_ANCHOR = 44  # local day number (days since 1970-01-01 in the rule set's zone)
O_REC_MONTHDAYS = 45  # bit d set = local day of month d allowed; 0 = every day
OFFER_COLS = 48  # 46 used: a row is six whole cache lines
TU_PERCENT, TU_AMOUNT, TU_PRICE = 0, 1, 2

NO_GROUP = -1
OPEN_START = -(2**62)
OPEN_END = 2**62

# ---- hot offer table: int64[n_offers, HOT_COLS], one 64-byte line per offer ----------------
# What candidate discovery reads of every candidate, and the checks (docs/pricing.md §4,
# checks 1-9) that it runs there before a candidate is queued: copies of offer table columns,
# so that a candidate rejected in discovery never touches its wide row.
H_ACTIVATION = 0  # O_ACTIVATION
H_SCOPE = 1  # O_SCOPE
H_KIND = 2  # O_KIND
H_GET_SET = 3  # O_GET_SET
H_STARTS = 4  # O_STARTS
H_ENDS = 5  # O_ENDS
H_WEEKDAYS = 6  # O_WEEKDAYS
H_STATIC = 7  # 1 = a check 1-9 beyond the coupon, window and weekdays applies (see compiler)
HOT_COLS = 8

# ---- product sets: int64[n_sets, SET_COLS]; values in RuleArrays.set_vals -----------------
S_ALL = 0
S_SKU_OFF, S_SKU_LEN = 1, 2
S_CAT_OFF, S_CAT_LEN = 3, 4
S_BRAND_OFF, S_BRAND_LEN = 5, 6
S_VENDOR_OFF, S_VENDOR_LEN = 7, 8
S_EXCL_OFF, S_EXCL_LEN = 9, 10
SET_COLS = 11

# ---- ladders: int64[n_steps, 3] (min_qty | threshold, amount, bps) ------------------------
L_THRESHOLD, L_AMOUNT, L_BPS = 0, 1, 2
# ---- bundle components: int64[n_components, 2] ------------------------------------------
B_SET, B_QTY = 0, 1

# ---- points programme: int64[PROGRAMME_COLS] ----------------------------------------------
P_ENABLED = 0
P_POINT_VALUE = 1
P_EARN_PER = 2
P_MIN_REDEEM = 3
P_STEP = 4
P_MAX_SHARE_BPS = 5
P_MAX_BUNDLE_LEN = 6  # not the points programme: the most components of any bundle offer
P_EARN_DELIVERY = 7  # 1 = the delivery lines earn base points (PointsProgram.earn_on_delivery)
P_LINE_PAIRS = 8  # not the points programme: the most (offer, line) pairs one line can find
PROGRAMME_COLS = 9

# ---- basket lines: int64[n_lines, LINE_COLS] ----------------------------------------------
L_SKU = 0  # catalogue/rule sku index; below 0 a sku the index lacks (one id per sku text)
L_CAT = 1  # on a delivery line, the compiled delivery category (CompiledRules.delivery_category)
L_BRAND = 2
L_VENDOR = 3
L_QTY = 4
L_PRICE = 5
L_FLAGS = 6
LINE_COLS = 7
FLAG_NO_DISCOUNT = 1
FLAG_NO_EARN = 2
FLAG_DELIVERY = 4  # the basket's delivery charge (Line.delivery): only delivery_off reads it

# ---- member: int64[MEMBER_COLS] -----------------------------------------------------------
M_IS_MEMBER = 0
M_TIER = 1  # tier index or -1
M_SEGMENTS = 2  # bitmask over RuleSet.segments
M_BIRTH_MONTH = 3
M_POINTS = 4  # available points
M_REDEEM = 5  # requested redemption, -1 = as many as allowed
M_ATTRS = 6  # bitmask of the rule set's member-attribute predicates the member meets
MEMBER_COLS = 7

# ---- context: int64[CTX_COLS] -------------------------------------------------------------
C_STORE = 0  # store index or -1
C_CHANNEL = 1  # channel index or -1
C_EPOCH = 2
C_WEEKDAY = 3
C_HOUR = 4
C_MONTH = 5
C_LOCAL_DAY = 6  # local day number (days since 1970-01-01 in the rule set's zone)
C_MONTHDAY = 7  # local day of month, 1-31
CTX_COLS = 8

# ---- coupons: int64[k, 2] (offer, remaining uses); limits: int64[m, LIM_COLS] -------------
LIM_OFFER, LIM_MEMBER_USES, LIM_TOTAL_USES, LIM_BUDGET = 0, 1, 2, 3
LIM_UNITS = 4  # units left to discount (total and store caps, less others' reservations)
LIM_COLS = 5

# ---- outputs ------------------------------------------------------------------------------
# One row table int64[cap, ROW_COLS] holds every variable-length output, tagged by ROW_TYPE,
# so a call returns nothing but counts and the batch kernel gives each basket one slab.
ROW_TYPE = 0
ROW_DISCOUNT = 1  # line, offer, amount, funded
ROW_APPLIED = 2  # offer, applications, points, units (discount offers)
ROW_POINTS = 3  # offer (-1 = base), points            (component number = its rank)
ROW_ATTRIBUTION = 4  # component number, line, points
ROW_EXPLANATION = 5  # evaluation position, offer, reason, detail, related offer
ROW_GIFT = 6  # offer, gift units in the basket (a gift offer the basket qualifies for)
ROW_COLS = 6
# line outputs int64[n, LINE_OUT_COLS]
LO_NET, LO_TENDER, LO_POINTS = 0, 1, 2
LINE_OUT_COLS = 3
# counts int64[COUNT_COLS]
N_ROWS = 0
N_COMPONENTS = 1
N_TENDER_POINTS = 2
N_TENDER_CODE = 3
N_OVERFLOW = 4
# set by the caller, read and kept by the kernel: bit t set = rows of type t are not written
# (a batch that keeps some kinds of row); the last column, so the counters above clear as one
N_DROP = 5
COUNT_COLS = 6

# ---- member-only items: int64[n_restrictions, RESTRICT_COLS] (CompiledRules.restrictions) --
R_SET = 0  # product set index (RuleArrays.sets)
R_TIER_MASK = 1  # bit t set = a member of tier t meets it
R_SEGMENT_MASK = 2  # bit s set = a member of segment s meets it
RESTRICT_COLS = 3
