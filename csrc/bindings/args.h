// Argument checking shared by the binding files: every message names the
// kernel, the argument and the shapes, as "kernel: what".
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace nnforge {
namespace bind_args {

// "(2, 3)", "(4,)" or "()": a shape written as Python writes a tuple.
template <typename Int>
std::string shape_str(const std::vector<Int>& shape) {
    std::string s = "(";
    for (std::size_t k = 0; k < shape.size(); ++k) {
        if (k) s += ", ";
        s += std::to_string(shape[k]);
    }
    return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::string shape_str(const pybind11::array& a) {
    return shape_str(std::vector<pybind11::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

// ValueError "kernel: what".
[[noreturn]] inline void fail(const char* kernel, const std::string& what) {
    throw std::invalid_argument(std::string(kernel) + ": " + what);
}

// `obj` as a numpy array, or TypeError "kernel: arg must be a numpy array, got T".
inline pybind11::array require_array(const char* kernel, const char* arg,
                                     const pybind11::object& obj) {
    if (!pybind11::isinstance<pybind11::array>(obj)) {
        throw pybind11::type_error(
            std::string(kernel) + ": " + arg + " must be a numpy array, got " +
            std::string(pybind11::str(pybind11::type::of(obj).attr("__name__"))));
    }
    return pybind11::reinterpret_borrow<pybind11::array>(obj);
}

// "float32", "float64", ...: a numpy dtype's name.
inline std::string dtype_str(const pybind11::array& a) {
    return std::string(pybind11::str(a.dtype()));
}

inline bool is_double(const pybind11::array& a) {
    return a.dtype().equal(pybind11::dtype::of<double>());
}

// ValueError "kernel: arg must be C-contiguous" unless it is.
inline void check_c_contiguous(const char* kernel, const char* arg, const pybind11::array& a) {
    if (!(a.flags() & pybind11::array::c_style)) {
        fail(kernel, std::string(arg) + " must be C-contiguous");
    }
}

// `obj` as a C-contiguous numpy array (the errors of the two checks above).
inline pybind11::array require_c_array(const char* kernel, const char* arg,
                                       const pybind11::object& obj) {
    pybind11::array a = require_array(kernel, arg, obj);
    check_c_contiguous(kernel, arg, a);
    return a;
}

// ValueError "kernel: arg has dtype D, expected float32 or float64" unless it is one.
inline void check_float_dtype(const char* kernel, const char* arg, const pybind11::array& a) {
    if (!a.dtype().equal(pybind11::dtype::of<float>()) &&
        !a.dtype().equal(pybind11::dtype::of<double>())) {
        fail(kernel, std::string(arg) + " has dtype " + dtype_str(a) +
                         ", expected float32 or float64");
    }
}

}  // namespace bind_args
}  // namespace nnforge
