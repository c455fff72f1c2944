"""results.json round trip: NaN is written as a string and read back as NaN."""


def test_result_float_reads_back_what_write_results_writes(tmp_path):
  import json
  import math
  from jaxmed.core import result_float, write_results
  write_results(str(tmp_path), {"a": float("nan"), "b": 0.5}, wall_time_s=1.0)
  back = json.load(open(tmp_path / "results.json"))
  assert back["a"] == "nan" and math.isnan(result_float(back["a"])) and result_float(back["b"]) == 0.5
  assert math.isnan(result_float(None)) and math.isnan(result_float("cpu"))
